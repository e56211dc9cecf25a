"""Ads: campaigns and their ledger, ad copy written by the in-house model under hard rules,
contextual targeting through the search index with brand safety, and the second-price auction
that charges each impression in the transaction that records it."""
