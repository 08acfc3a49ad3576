"""Asset code of tremplin that is not dbt: sources and exports."""
