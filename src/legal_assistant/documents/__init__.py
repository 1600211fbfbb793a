"""Dossiers: the user's documents, split into passages that keep their page, indexed for
hybrid search, and cited to the page in grounded answers."""
