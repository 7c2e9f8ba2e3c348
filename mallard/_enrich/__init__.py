"""Pure enrichment functions for the ingestion pipeline: User-Agent, bots, URLs, referrers, GeoIP."""
