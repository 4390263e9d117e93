"""HTTP service: routers per audience and server-rendered pages (built in a later issue)."""
