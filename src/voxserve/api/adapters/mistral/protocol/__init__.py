"""Mistral wire models, one module per area: voices, speech, transcription, chat, files."""
