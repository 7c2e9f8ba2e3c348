"""The project's one mallard instance, shared by wsgi.py (which mounts it) and the views (which track)."""

import mallard

analytics = mallard.Mallard()  # settings from the MALLARD_* environment (data_dir: ./mallard-data)
