"""The simulator's vocabulary: topics, names and one grammar module per language (en, es, fr, de).

All of it is invented for roost. People, teams, brands and products are fictional, so simulated
posts never put words in a real person's mouth; cities and countries are real.
"""
