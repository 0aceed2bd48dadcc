"""The ARI adapter: a thin typed client for Asterisk's REST interface and its events websocket."""
