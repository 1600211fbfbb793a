"""Court decisions read the way a jurist reads them: header, zones, numbered paragraphs,
visa (pure functions, run at ingestion), and the fiche d'arrêt built from them."""

from legal_assistant.judgments.parse import analyse

__all__ = ["analyse"]
