"""Perplexity leaderboards: trusted evaluation, storage and the web page (see DESIGN.md).

- :mod:`.config` -- a submission's ``ModelConfig`` and a board's ``BoardRules``
- :mod:`.checkpoint` -- reading and refusing submissions (safetensors only, never a pickle)
- :mod:`.architecture` -- the reference Transformer LM of ``reference/basics``, built from a config
- :mod:`.evaluate` -- loss, perplexity and bits per byte on held-out text
- :mod:`.db`, :mod:`.store`, :mod:`.views`, :mod:`.migrations` -- storage; :mod:`.web`, :mod:`.client`,
  :mod:`.curves` -- the served board
"""
