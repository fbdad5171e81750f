"""User studies: specs, blinded forms, the collection server, response ingestion and scoring."""
