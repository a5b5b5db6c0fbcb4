"""Training for the disfluency tagger (needs the ``train`` extra: torch, transformers).

* :mod:`.align`: word labels for Disfl-QA by aligning each disfluent question
  with its fluent original;
* :mod:`.generate`: LARD-style injection of fillers, repetitions, repairs and
  restarts into fluent commands (SNIPS + the assistant's own commands);
* :mod:`.train`: prefix ("restart-incremental") fine-tuning with a wait head,
  ONNX export and INT8 dynamic quantisation.
"""
