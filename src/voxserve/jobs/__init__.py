"""The job queue that runs batch jobs: procrastinate on PostgreSQL (``jobs.queue``)."""
