-- The collection's encrypted fields: a JSON array of top-level data keys,
-- applied like 00003 to the pooled schema and every silo schema.

ALTER TABLE collections ADD COLUMN encrypted_fields text NOT NULL DEFAULT '[]';
