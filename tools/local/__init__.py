"""The local environment: the stack's functions on Google's emulators with the provider sandbox."""
