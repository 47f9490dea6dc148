"""Services the API routers and the CLI call; tests call them directly too."""
