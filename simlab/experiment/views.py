"""How a compare or a sweep shows itself in a notebook: its report's table in HTML and `.plot()` of its figures.

Mixins of `Comparison` and `SweepResult`; the drawing lives in `simlab/report` and loads on first use.
"""
from __future__ import annotations


class ComparisonView:
    def _repr_html_(self) -> str:
        from simlab.report.views import compare_html

        return compare_html(self.table, self.meta)

    def plot(self, which: str = "bad_requests"):
        """The compare report's figures: `bad_requests` (per deploy of a bad release, and what it added),
        `detect_recover` (time to detect and to recover) or `pareto` (deploy time of a good release against the bad
        requests the release added); a Picture, shown by Jupyter, saved by `.save(path)`."""
        from simlab.report.views import compare_pareto, compare_picture

        if which == "pareto":
            from simlab.experiment.aggregate import pareto

            return compare_pareto(self.table, set(pareto(self.table, y="added_mean")["variant"]))
        runs = self.runs.assign(variant=self.runs["variant"].astype(str))
        return compare_picture(runs, [str(v) for v in self.table["variant"]], which)


class SweepView:
    def _repr_html_(self) -> str:
        from simlab.report.views import sweep_html

        return sweep_html(self.table, self.pareto, list(self.meta["params"]), self.meta)

    def plot(self, which: str = "pareto"):
        """The sweep report's figure: `pareto` (every grid point's deploy time against the objective of its decision,
        those out of the limits hollow) or `heatmap` (over the first two parameters); a Picture."""
        from simlab.report.views import sweep_picture

        return sweep_picture(self.table, self.pareto, list(self.meta["params"]), which, self.meta.get("decision"))
