"""Developer-side tools: the `switchboard` CLI, the AppConfig agent emulator and the local stack.

Nothing here ships in a Lambda package.
"""
