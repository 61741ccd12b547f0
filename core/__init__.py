"""Code shared by the API and the worker: settings, database, named SQL, queue operations."""
