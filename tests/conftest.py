"""Suite-wide test settings: no hypothesis deadlines (shared CI machines are slow and noisy)."""
from hypothesis import settings

settings.register_profile("simlab", deadline=None)
settings.load_profile("simlab")
