"""roost: a social platform's own generative-AI stack, from firehose to search and ads."""

__version__ = "0.1.0"
