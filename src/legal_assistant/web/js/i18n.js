// Every string the UI shows, one table per language. French is the default.
// Messages that come from the backend (status lines, error messages) are already
// localized by it according to the `language` we send; the tables below hold the UI's
// own words, the hints shown under each error code, and fallback error messages (used
// for answers saved with an error code, where only the code is stored).

export const STRINGS = {
  fr: {
    "app.name": "Legal Assistant",
    "app.tagline": "Assistant juridique local",
    "app.skip": "Aller au message",
    "sidebar.new": "Nouvelle conversation",
    "sidebar.heading": "Conversations",
    "sidebar.empty": "Aucune conversation pour l'instant. Posez votre première question !",
    "sidebar.delete": "Supprimer « {title} »",
    "sidebar.confirm": "Supprimer",
    "sidebar.cancel": "Annuler",
    "sidebar.today": "Aujourd'hui",
    "sidebar.yesterday": "Hier",
    "sidebar.earlier": "Plus ancien",
    "sidebar.messages": "{n} messages",
    "sidebar.message": "1 message",
    "sidebar.privacy": "Vos conversations restent sur cette machine.",
    "sidebar.loadError": "Impossible de charger les conversations.",
    "header.menu": "Afficher les conversations",
    "header.model": "Modèle : {model}",
    "header.settings": "Paramètres LLM",
    "header.noModel": "Choisir un modèle",
    "header.engines": "Moteurs",
    "header.newChat": "Nouvelle conversation",
    "header.language": "Langue",
    "empty.title": "Comment puis-je vous aider ?",
    "empty.subtitle":
      "Posez une question juridique. Les réponses sont générées par un modèle local, sur cette machine : rien ne quitte votre ordinateur.",
    "empty.s1": "Quelles sont les étapes d'un divorce par consentement mutuel ?",
    "empty.s2": "Quelle est la différence entre un CDD et un CDI ?",
    "empty.s3": "Comment rédiger une mise en demeure ?",
    "empty.disclaimer":
      "Les réponses peuvent contenir des erreurs et ne remplacent pas l'avis d'un avocat.",
    "composer.label": "Votre message",
    "composer.placeholder": "Écrivez votre question…",
    "composer.hint": "Entrée pour envoyer · Maj+Entrée pour aller à la ligne",
    "composer.send": "Envoyer",
    "composer.stop": "Arrêter la génération",
    "msg.you": "Vous",
    "msg.assistant": "Assistant",
    "msg.copy": "Copier",
    "msg.copied": "Copié dans le presse-papiers",
    "msg.copyCode": "Copier le code",
    "msg.stopped": "Génération arrêtée — réponse partielle conservée",
    "msg.partial": "Réponse incomplète",
    "msg.waiting": "L'assistant rédige sa réponse…",
    "msg.ttft": "1er jeton {v}",
    "msg.ttftTitle": "Délai avant le premier jeton (TTFT)",
    "msg.tps": "{v} jetons/s",
    "msg.tokens": "{n} jetons",
    "msg.start": "démarrage {v}",
    "msg.total": "total {v}",
    "msg.empty": "(réponse vide)",
    "status.elapsed": "{v}",
    "status.progress": "Progression",
    "error.title": "La réponse n'a pas pu être générée",
    "error.hint": "Que faire ?",
    "error.details": "Détails techniques",
    "error.logs": "Voir les journaux du moteur",
    "error.settings": "Ouvrir les paramètres",
    "error.retry": "Réessayer",
    "error.partialKept": "La partie déjà générée a été conservée.",
    "models.title": "Paramètres LLM",
    "models.subtitle": "Le modèle choisi est utilisé pour vos prochains messages.",
    "models.loading": "Chargement du catalogue…",
    "models.loadError": "Impossible de charger le catalogue des modèles.",
    "models.group.mlx": "MLX — géré par Legal Assistant",
    "models.group.ollama": "Ollama",
    "models.group.openai": "Compatible OpenAI",
    "models.default": "Par défaut",
    "models.recommended": "Recommandé",
    "models.offline": "Disponible hors ligne",
    "models.download": "Téléchargement au premier usage",
    "models.loaded": "Chargé",
    "models.size": "{v} sur disque",
    "models.ram": "≈ {v} de RAM",
    "models.ollamaError": "Ollama n'est pas joignable : {v}",
    "models.none": "Aucun modèle de ce fournisseur.",
    "settings.access": "Accès au serveur",
    "settings.apiKey": "Clé d'API",
    "settings.apiKeyHelp":
      "Seulement si le serveur en exige une. Elle est conservée dans ce navigateur.",
    "settings.apiKeyPlaceholder": "Aucune clé",
    "settings.save": "Enregistrer la clé",
    "settings.saved": "Clé enregistrée",
    "settings.clear": "Effacer",
    "settings.cleared": "Clé effacée",
    "common.close": "Fermer",
    "common.done": "Terminé",
    "engines.title": "Moteurs",
    "engines.subtitle": "Serveurs de modèles supervisés par Legal Assistant.",
    "engines.empty":
      "Aucun moteur lancé. Il démarre automatiquement à l'envoi du premier message.",
    "engines.startSelected": "Démarrer le modèle choisi",
    "engines.policy.swap": "Un modèle à la fois",
    "engines.policy.budget": "Plusieurs modèles, selon le budget mémoire",
    "engines.memoryUse": "{used} estimés sur {budget}",
    "engines.idleTtl": "Déchargement après {v} d'inactivité",
    "engines.idleIn": "Déchargement automatique dans {v}",
    "engines.live": "Suivi en direct",
    "engines.offline": "Reconnexion…",
    "engines.model": "Modèle",
    "engines.port": "Port",
    "engines.pid": "PID",
    "engines.uptime": "Actif depuis",
    "engines.memory": "Mémoire",
    "engines.inflight": "En cours",
    "engines.starts": "Démarrages",
    "engines.startTime": "Prêt en",
    "engines.lastError": "Dernière erreur",
    "engines.stop": "Arrêter",
    "engines.start": "Démarrer",
    "engines.logs": "Journaux",
    "engines.hideLogs": "Masquer les journaux",
    "engines.refresh": "Actualiser",
    "engines.noLogs": "Aucune ligne de journal pour l'instant.",
    "engines.logsTitle": "Journal de {id}",
    "engines.state.stopped": "Arrêté",
    "engines.state.starting": "Démarrage",
    "engines.state.loading": "Chargement",
    "engines.state.ready": "Prêt",
    "engines.state.stopping": "Arrêt…",
    "engines.state.failed": "En échec",
    "engines.stopFailed": "L'arrêt du moteur a échoué.",
    "engines.startFailed": "Le démarrage du moteur a échoué.",
    "time.s": "{v} s",
    "time.min": "{m} min {s} s",
    "time.h": "{h} h {m} min",
    "hint.engine_not_installed":
      "Installez mlx-lm : exécutez « uv sync » dans le dossier du projet, puis réessayez.",
    "hint.port_busy":
      "Le message ci-dessus indique quel programme occupe le port. Fermez-le, ou laissez Legal Assistant choisir un port libre (LEGAL_ASSISTANT_MLX_PORT=0).",
    "hint.model_not_found":
      "Vérifiez l'orthographe du modèle, la connexion Internet, ou choisissez un autre modèle.",
    "hint.engine_crashed":
      "Consultez les journaux du moteur, puis renvoyez votre message : le moteur redémarrera.",
    "hint.engine_wedged":
      "Arrêtez le moteur depuis le panneau Moteurs, puis renvoyez votre message.",
    "hint.timeout":
      "La machine est peut-être très chargée. Réessayez dans un instant ou choisissez un modèle plus petit.",
    "hint.switch_timeout":
      "Une réponse est encore en cours sur l'ancien modèle. Attendez qu'elle se termine, puis réessayez.",
    "hint.provider_unavailable":
      "Vérifiez que le fournisseur (Ollama ou le serveur compatible OpenAI) est démarré et joignable.",
    "hint.upstream_error":
      "Le serveur du modèle a refusé la requête. Consultez ses journaux ou choisissez un autre modèle.",
    "hint.bad_request": "Vérifiez votre message, puis réessayez.",
    "hint.invalid_model_id": "Choisissez un modèle de la liste dans Paramètres LLM.",
    "hint.unknown_provider": "Choisissez un modèle de la liste dans Paramètres LLM.",
    "hint.busy": "Beaucoup de demandes sont en attente : patientez quelques secondes, puis réessayez.",
    "hint.unauthorized":
      "Ce serveur exige une clé d'API : saisissez-la dans Paramètres LLM, rubrique « Accès au serveur ».",
    "hint.not_found": "Cette conversation n'existe plus : commencez-en une nouvelle.",
    "hint.network": "Vérifiez que le serveur Legal Assistant est démarré, puis réessayez.",
    "hint.shutting_down": "Le serveur s'arrête. Relancez-le, puis réessayez.",
    "hint.interrupted": "La connexion a été coupée pendant la réponse. Réessayez.",
    "err.engine_not_installed":
      "❌ Échec du démarrage du serveur MLX. Vérifiez que mlx-lm est installé (uv sync).",
    "err.port_busy": "❌ Le port du serveur est déjà utilisé.",
    "err.model_not_found":
      "❌ Modèle introuvable. Vérifiez l'orthographe du modèle, la connexion Internet, ou utilisez un autre modèle MLX.",
    "err.engine_crashed": "❌ Le serveur du modèle s'est arrêté de façon inattendue.",
    "err.engine_wedged": "❌ Le serveur du modèle ne répond plus (thread de génération arrêté).",
    "err.timeout": "❌ Le serveur du modèle n'a montré aucun progrès dans le délai imparti.",
    "err.switch_timeout":
      "❌ Le changement de modèle attend encore la fin d'une réponse en cours.",
    "err.bad_request": "❌ Requête invalide.",
    "err.invalid_model_id": "❌ Identifiant de modèle invalide.",
    "err.unknown_provider": "❌ Fournisseur de modèle inconnu.",
    "err.not_found": "❌ Introuvable.",
    "err.provider_unavailable": "❌ Le fournisseur du modèle est injoignable.",
    "err.upstream_error": "❌ Le serveur du modèle a renvoyé une erreur.",
    "err.busy": "❌ Trop de requêtes en attente pour ce modèle, réessayez dans un instant.",
    "err.unauthorized": "❌ Clé d'API manquante ou invalide.",
    "err.shutting_down": "❌ Le serveur s'arrête.",
    "err.network": "❌ Impossible de joindre le serveur Legal Assistant.",
    "err.interrupted": "❌ La réponse a été interrompue.",
    "err.unknown": "❌ Une erreur inattendue s'est produite.",
  },
  en: {
    "app.name": "Legal Assistant",
    "app.tagline": "Local legal assistant",
    "app.skip": "Skip to message",
    "sidebar.new": "New conversation",
    "sidebar.heading": "Conversations",
    "sidebar.empty": "No conversations yet. Ask your first question!",
    "sidebar.delete": "Delete “{title}”",
    "sidebar.confirm": "Delete",
    "sidebar.cancel": "Cancel",
    "sidebar.today": "Today",
    "sidebar.yesterday": "Yesterday",
    "sidebar.earlier": "Earlier",
    "sidebar.messages": "{n} messages",
    "sidebar.message": "1 message",
    "sidebar.privacy": "Your conversations stay on this machine.",
    "sidebar.loadError": "Could not load the conversations.",
    "header.menu": "Show conversations",
    "header.model": "Model: {model}",
    "header.settings": "LLM settings",
    "header.noModel": "Choose a model",
    "header.engines": "Engines",
    "header.newChat": "New conversation",
    "header.language": "Language",
    "empty.title": "How can I help you?",
    "empty.subtitle":
      "Ask a legal question. Answers are generated by a local model, on this machine: nothing leaves your computer.",
    "empty.s1": "What are the steps of a divorce by mutual consent?",
    "empty.s2": "What is the difference between a fixed-term and a permanent contract?",
    "empty.s3": "How do I write a formal notice?",
    "empty.disclaimer": "Answers may contain mistakes and are no substitute for a lawyer's advice.",
    "composer.label": "Your message",
    "composer.placeholder": "Write your question…",
    "composer.hint": "Enter to send · Shift+Enter for a new line",
    "composer.send": "Send",
    "composer.stop": "Stop generating",
    "msg.you": "You",
    "msg.assistant": "Assistant",
    "msg.copy": "Copy",
    "msg.copied": "Copied to the clipboard",
    "msg.copyCode": "Copy code",
    "msg.stopped": "Generation stopped — partial answer kept",
    "msg.partial": "Incomplete answer",
    "msg.waiting": "The assistant is writing…",
    "msg.ttft": "first token {v}",
    "msg.ttftTitle": "Time to first token (TTFT)",
    "msg.tps": "{v} tokens/s",
    "msg.tokens": "{n} tokens",
    "msg.start": "start {v}",
    "msg.total": "total {v}",
    "msg.empty": "(empty answer)",
    "status.elapsed": "{v}",
    "status.progress": "Progress",
    "error.title": "The answer could not be generated",
    "error.hint": "What to do",
    "error.details": "Technical details",
    "error.logs": "View engine logs",
    "error.settings": "Open settings",
    "error.retry": "Retry",
    "error.partialKept": "The part already generated was kept.",
    "models.title": "LLM settings",
    "models.subtitle": "The chosen model is used for your next messages.",
    "models.loading": "Loading the catalog…",
    "models.loadError": "Could not load the model catalog.",
    "models.group.mlx": "MLX — managed by Legal Assistant",
    "models.group.ollama": "Ollama",
    "models.group.openai": "OpenAI-compatible",
    "models.default": "Default",
    "models.recommended": "Recommended",
    "models.offline": "Available offline",
    "models.download": "Downloaded on first use",
    "models.loaded": "Loaded",
    "models.size": "{v} on disk",
    "models.ram": "≈ {v} RAM",
    "models.ollamaError": "Ollama is not reachable: {v}",
    "models.none": "No model from this provider.",
    "settings.access": "Server access",
    "settings.apiKey": "API key",
    "settings.apiKeyHelp": "Only if the server requires one. It is kept in this browser.",
    "settings.apiKeyPlaceholder": "No key",
    "settings.save": "Save key",
    "settings.saved": "Key saved",
    "settings.clear": "Clear",
    "settings.cleared": "Key cleared",
    "common.close": "Close",
    "common.done": "Done",
    "engines.title": "Engines",
    "engines.subtitle": "Model servers supervised by Legal Assistant.",
    "engines.empty": "No engine running. One starts automatically when you send a message.",
    "engines.startSelected": "Start the chosen model",
    "engines.policy.swap": "One model at a time",
    "engines.policy.budget": "Several models, within the memory budget",
    "engines.memoryUse": "{used} estimated of {budget}",
    "engines.idleTtl": "Unloaded after {v} idle",
    "engines.idleIn": "Automatic unload in {v}",
    "engines.live": "Live",
    "engines.offline": "Reconnecting…",
    "engines.model": "Model",
    "engines.port": "Port",
    "engines.pid": "PID",
    "engines.uptime": "Uptime",
    "engines.memory": "Memory",
    "engines.inflight": "In flight",
    "engines.starts": "Starts",
    "engines.startTime": "Ready in",
    "engines.lastError": "Last error",
    "engines.stop": "Stop",
    "engines.start": "Start",
    "engines.logs": "Logs",
    "engines.hideLogs": "Hide logs",
    "engines.refresh": "Refresh",
    "engines.noLogs": "No log lines yet.",
    "engines.logsTitle": "Log of {id}",
    "engines.state.stopped": "Stopped",
    "engines.state.starting": "Starting",
    "engines.state.loading": "Loading",
    "engines.state.ready": "Ready",
    "engines.state.stopping": "Stopping",
    "engines.state.failed": "Failed",
    "engines.stopFailed": "Stopping the engine failed.",
    "engines.startFailed": "Starting the engine failed.",
    "time.s": "{v} s",
    "time.min": "{m} min {s} s",
    "time.h": "{h} h {m} min",
    "hint.engine_not_installed":
      "Install mlx-lm: run “uv sync” in the project folder, then try again.",
    "hint.port_busy":
      "The message above names the program holding the port. Close it, or let Legal Assistant pick a free port (LEGAL_ASSISTANT_MLX_PORT=0).",
    "hint.model_not_found":
      "Check the model's spelling, the Internet connection, or pick another model.",
    "hint.engine_crashed":
      "Look at the engine logs, then send your message again: the engine will restart.",
    "hint.engine_wedged": "Stop the engine from the Engines panel, then send your message again.",
    "hint.timeout":
      "The machine may be very busy. Try again in a moment or pick a smaller model.",
    "hint.switch_timeout":
      "An answer is still in progress on the previous model. Wait for it to finish, then try again.",
    "hint.provider_unavailable":
      "Check that the provider (Ollama or the OpenAI-compatible server) is running and reachable.",
    "hint.upstream_error":
      "The model server refused the request. Look at its logs or pick another model.",
    "hint.bad_request": "Check your message, then try again.",
    "hint.invalid_model_id": "Pick a model from the list in LLM settings.",
    "hint.unknown_provider": "Pick a model from the list in LLM settings.",
    "hint.busy": "Many requests are waiting: wait a few seconds, then try again.",
    "hint.unauthorized":
      "This server requires an API key: enter it in LLM settings, under “Server access”.",
    "hint.not_found": "This conversation no longer exists: start a new one.",
    "hint.network": "Check that the Legal Assistant server is running, then try again.",
    "hint.shutting_down": "The server is shutting down. Start it again, then retry.",
    "hint.interrupted": "The connection was lost during the answer. Try again.",
    "err.engine_not_installed":
      "❌ The MLX server failed to start. Check that mlx-lm is installed (uv sync).",
    "err.port_busy": "❌ The server port is already in use.",
    "err.model_not_found":
      "❌ Model not found. Check the model's spelling, the Internet connection, or pick another MLX model.",
    "err.engine_crashed": "❌ The model server stopped unexpectedly.",
    "err.engine_wedged": "❌ The model server stopped responding (its generation thread died).",
    "err.timeout": "❌ The model server made no progress within the allowed time.",
    "err.switch_timeout": "❌ The model switch is still waiting for an answer in progress to finish.",
    "err.bad_request": "❌ Invalid request.",
    "err.invalid_model_id": "❌ Invalid model id.",
    "err.unknown_provider": "❌ Unknown model provider.",
    "err.not_found": "❌ Not found.",
    "err.provider_unavailable": "❌ The model provider is unreachable.",
    "err.upstream_error": "❌ The model server returned an error.",
    "err.busy": "❌ Too many requests queued for this model, retry in a moment.",
    "err.unauthorized": "❌ Missing or invalid API key.",
    "err.shutting_down": "❌ The server is shutting down.",
    "err.network": "❌ Could not reach the Legal Assistant server.",
    "err.interrupted": "❌ The answer was interrupted.",
    "err.unknown": "❌ An unexpected error occurred.",
  },
};

export const LANGUAGES = ["fr", "en"];

let current = "fr";

export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "fr";
  document.documentElement.lang = current;
  return current;
}

export function getLanguage() {
  return current;
}

/** Translate `key`, replacing {name} placeholders with `vars`. */
export function t(key, vars = {}) {
  const table = STRINGS[current] || STRINGS.fr;
  let text = table[key] ?? STRINGS.fr[key] ?? key;
  for (const [name, value] of Object.entries(vars)) {
    text = text.split(`{${name}}`).join(String(value));
  }
  return text;
}

export function has(key) {
  return key in (STRINGS[current] || STRINGS.fr);
}

/** Apply translations to static markup: data-i18n (text), data-i18n-<attr> (attributes). */
export function translateDom(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const attr of ["placeholder", "title", "aria-label"]) {
    const data = `i18n${attr.replace(/(^|-)(\w)/g, (_m, _d, c) => c.toUpperCase())}`;
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.dataset[data]));
    }
  }
}
