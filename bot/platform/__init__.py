"""The platform repo: where its files come from (`sources`), safe YAML (`yamlload`), documents
into typed objects (`objects`, `loader`), API schemas (`schema`, `schema_structural`) and
`validate/`."""
