"""The web app: one HTML page and its static files (no build step, no CDN), served by
``voxserve.api.web``. The page calls the public API with the session cookie."""
