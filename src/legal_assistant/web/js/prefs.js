// Preferences kept in localStorage (all keys start with "la.").
const KEYS = {
  model: "la.model",
  lang: "la.lang",
  apiKey: "la.apiKey",
  maxTokens: "la.maxTokens",
  enginesOpen: "la.enginesOpen",
};

function read(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === null || value === undefined || value === "") window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, String(value));
  } catch {
    /* private mode: preferences just do not persist */
  }
}

export const prefs = {
  model: () => read(KEYS.model),
  setModel: (id) => write(KEYS.model, id),
  lang: () => read(KEYS.lang),
  setLang: (lang) => write(KEYS.lang, lang),
  apiKey: () => read(KEYS.apiKey) || "",
  setApiKey: (key) => write(KEYS.apiKey, key),
  /** Hidden setting: an integer 1..8192 sent as `max_tokens`, or null (server default). */
  maxTokens: () => {
    const n = parseInt(read(KEYS.maxTokens) || "", 10);
    return Number.isFinite(n) && n >= 1 && n <= 8192 ? n : null;
  },
  enginesOpen: () => read(KEYS.enginesOpen) === "1",
  setEnginesOpen: (open) => write(KEYS.enginesOpen, open ? "1" : null),
};
