"""Development tooling shared by `sous dev`, the tests and the load tests: throwaway Postgres and
Redis servers (`services`), a whole stack under supervisord (`stack`), process helpers (`procs`)
and the demo data (`demo/`). Nothing in the runtime (api/, worker/) imports it."""
