"""roost: a social platform's own generative-AI stack, from firehose to search and ads."""

import os

# pyarrow's default memory pool is its bundled mimalloc, and rensa (near-dedup) links a mimalloc of
# its own as Rust's allocator. Two mimalloc runtimes in one process crashed the test suite now and
# then (SIGSEGV inside pyarrow's `to_pylist` after MinHash work), as they have elsewhere; pyarrow on
# the system allocator leaves one. Set before anything imports pyarrow; a user's own choice wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

__version__ = "0.1.0"
