"""Public testing tools: the local emulator of the Helicone and Weave endpoints."""
