"""Tools that make mirror directories: the synthetic France Travail API answers and the
benchmark's scaled inputs. Run by hand or by the benchmark, never by a pipeline run."""
