"""The API's routers: one module per aggregate for commands, one for queries."""
