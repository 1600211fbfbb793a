"""Pure translations between the protocols the gateway speaks (Anthropic Messages, the
Ollama API) and the OpenAI chat API every engine serves. No I/O here: the routes in
`legal_assistant.api.routes` hold the engines and move the bytes."""
