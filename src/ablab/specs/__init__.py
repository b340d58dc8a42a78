"""The spec, in three modules: ``stack`` (the ``Spec`` value and building layers from arguments),
``grammar`` (the text form) and ``source`` (resolving MODEL: preset, file or string). The public
import path is ``ablab.spec``."""
