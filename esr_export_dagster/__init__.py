"""Daily TIS -> ESR export of trainee doctors' applicant records, as Dagster assets over MongoDB."""
