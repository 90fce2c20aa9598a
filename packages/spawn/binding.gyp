{
  "targets": [
    {
      "target_name": "gq_spawn",
      "sources": ["src/spawn.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
