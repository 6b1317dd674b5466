"""Decode any container to PCM, resample, and encode wav/pcm/mp3/flac/opus/aac (streaming)."""
