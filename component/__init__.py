"""The XMPP side of Portway: XEP-0114 components, stanza routing, the CLI and config loading."""
