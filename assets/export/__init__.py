"""Diagnostic tables -> files the product reads: writing, schemas, vintages and promotion,
diff between vintages, publication gate, field reference."""
