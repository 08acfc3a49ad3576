"""What every source shares: HTTP fetch, landing, raw publication, validation, the Dagster
asset factory, freshness status and the France Travail API client."""
