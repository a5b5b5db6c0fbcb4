"""Dialog manager, domains and skills."""
