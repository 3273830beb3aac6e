"""The objects world: everyday-object emoji from several sets (icons), captioned scenes of them
(scenes), the small SD that learns them (model; trained by export.shapes.train's Trainer), and
the judge that scores its pictures from pixels alone (judge)."""
