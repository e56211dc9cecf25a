"""Export: a trained run to and from other formats (Hugging Face Llama)."""
