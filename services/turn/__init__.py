"""End-of-turn signals: is the speaker done, judged from what the pipeline has heard."""
