"""sync: a code tree mirrored to another machine with rsync, watched with watchman. Light: no torch."""
