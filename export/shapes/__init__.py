"""The default model's world: the captioned shapes it learns, its small SD architecture, the CPU
training run that makes it, and the judge that scores its pictures from pixels alone.

Converting checkpoints (any SD, including this one once trained) is the rest of ``export``.
"""
