// Application state shared by the views, with a minimal publish/subscribe.
import { getLanguage } from "./i18n.js";

export const state = {
  catalog: { default: null, models: [], ollama_error: null, loaded: false, error: null },
  modelId: null,
  conversations: [],
  conversationsError: false,
  currentId: null,
  current: null, // the open conversation's detail, as last loaded
  engines: new Map(), // id -> { status, receivedAt }
  enginesLive: false,
  streaming: null, // { controller, conversationId }
};

const listeners = new Map();

export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

export function emit(topic, payload) {
  for (const fn of listeners.get(topic) || []) {
    try {
      fn(payload);
    } catch (exc) {
      console.error(exc);
    }
  }
}

export function findModel(id) {
  return state.catalog.models.find((m) => m.id === id) || null;
}

/** A model's label in the UI language (the seed's labels), or its id when unknown. */
export function modelLabel(id) {
  const model = findModel(id);
  if (!model) return id || "";
  return (getLanguage() === "en" ? model.label_en : model.label_fr) || model.label || id;
}

/** The label without its " - remark" suffix, for tight places (metadata lines). */
export function shortModelLabel(id) {
  return modelLabel(id).split(" - ")[0];
}

/** The supervised engine serving `modelId`, if any. */
export function engineFor(modelId) {
  for (const { status } of state.engines.values()) {
    if (status.model === modelId) return status;
  }
  return null;
}
