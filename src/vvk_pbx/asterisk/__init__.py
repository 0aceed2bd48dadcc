"""Asterisk: the config rendered from the ops config, the local instance, the fallback dialplan."""
