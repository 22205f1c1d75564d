"""JSON schemas of what edgepipe writes (report.json, model_card.json), installed as edgepipe.schemas."""
