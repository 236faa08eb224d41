"""Django's format overrides (FORMAT_MODULE_PATH): every time the admin shows has its seconds
and says its zone."""
