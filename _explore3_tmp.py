import json, sys, time
sys.path.insert(0, '.')
from benchmarks.budget import design
from mixq_hw.folding.costs import NodeCosts, engine_figures
from mixq_hw.folding.spec import layer_candidates, fold_layers
from mixq_hw.pipeline import LayerFold
t0 = time.time()
name = sys.argv[1]
kinds = tuple(sys.argv[2].split(','))
targets = [int(x) for x in sys.argv[3:]]
graph, _, _ = design(name)
costs = NodeCosts(graph)
windows = costs.engine_windows()
LIM_D, LIM_L = 306, 55676
d = json.load(open('benchmarks/results/budget.json'))
base = {k: LayerFold(v['simd'], v['pe'], v['pixels'], v.get('multiplier', 'dsp'))
        for k, v in next(x for x in d['designs'] if x['design'] == name)['realistic']['folding'].items()}
b = costs.folding(base)
allrows = {}
for node in fold_layers(graph):
    rows = []
    for f in layer_candidates(graph, node, kinds):
        try:
            cyc, dsp, lut = engine_figures(graph, node, f, windows)
        except ValueError:
            continue
        rows.append((cyc, dsp, lut, f))
    allrows[node.name] = rows
for T in targets:
    deltas = {}
    for layer, rows in allrows.items():
        ok = [r for r in rows if r[0] <= T]
        best_by_kind = []
        for m in kinds:
            r = sorted([x for x in ok if x[3].multiplier == m], key=lambda x: (x[1], x[2], -x[0]) if m != 'lut' else (x[2], -x[0]))
            best_by_kind += r[:10]
        out = []
        for r in best_by_kind:
            try:
                c = costs.folding({**base, layer: r[3]})
            except Exception:
                continue
            if max(s.cycles for s in c.nodes[layer].stages) > T:
                continue
            out.append((c.resources.dsp - b.resources.dsp, c.resources.lut - b.resources.lut, r[3]))
        deltas[layer] = out
    results = []
    for lam in (30, 60, 100, 150, 200, 300, 500):
        fold = dict(base)
        for layer, out in deltas.items():
            if out:
                fold[layer] = min(out, key=lambda x: x[1] + lam * x[0])[2]
        c = costs.folding(fold)
        r = c.resources
        results.append((max(r.dsp / LIM_D, r.lut / LIM_L), lam, c.cycles, r.dsp, r.lut, fold))
    best = min(results, key=lambda x: x[0])
    print(f"{name} T {T} kinds {kinds}: best util {best[0]:.3f} (lambda {best[1]}) cycles {best[2]} dsp {best[3]} lut {best[4]}")
    print('   ', {k: (v.simd, v.pe, v.pixels, v.multiplier) for k, v in best[5].items()})
print('t', round(time.time() - t0, 1))
