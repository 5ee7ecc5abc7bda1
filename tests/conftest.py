"""Suite-wide test settings: no hypothesis deadlines (shared CI machines are slow and noisy), no shrinking."""
from hypothesis import Phase, settings

# No shrinking: a failing example is printed as found, so a red CI run stays within its time budget.
settings.register_profile("simlab", deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("simlab")
