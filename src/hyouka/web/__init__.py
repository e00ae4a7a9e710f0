"""The dashboard: FastAPI app, server-rendered templates, static assets served by the package."""
