// The symbol page's chart: stored bars as candles (lightweight-charts 4, vendored), a band
// under them marking missing (gap) and confirmed-empty bar times, the provider of the bar
// under the crosshair, and reloads when the interval, adjust or as_of controls change.
(function () {
  "use strict";

  var GAP = "rgba(220, 38, 38, 0.85)";
  var EMPTY = "rgba(148, 163, 184, 0.85)";

  var box = document.getElementById("chart");
  if (!box || typeof LightweightCharts === "undefined") return;
  var symbol = box.dataset.symbol;
  var form = document.getElementById("symbol-form");
  var legend = document.getElementById("chart-legend");
  var status = document.getElementById("chart-status");
  var gapsBox = document.getElementById("chart-gaps");

  var chart = LightweightCharts.createChart(box, {
    autoSize: true,
    layout: { background: { color: "#ffffff" }, textColor: "#1f2937" },
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { scaleMargins: { top: 0.05, bottom: 0.12 } },
  });
  var candles = chart.addCandlestickSeries();
  // The band sits on its own hidden scale at the bottom; its points also keep a slot on the
  // time axis for bar times that have no candle, so a hole shows as a marked empty slot.
  var band = chart.addHistogramSeries({
    priceScaleId: "marks",
    lastValueVisible: false,
    priceLineVisible: false,
    priceFormat: { type: "volume" },
  });
  chart.priceScale("marks").applyOptions({ scaleMargins: { top: 0.92, bottom: 0 }, visible: false });

  var bars = new Map();
  var marks = new Map();

  function controls() {
    var adjust = form.querySelector("input[name=adjust]:checked");
    var asOf = document.getElementById("chart-as-of").value;
    return {
      interval: document.getElementById("chart-interval").value,
      adjust: adjust ? adjust.value : "raw",
      // datetime-local has no zone: the picker is labelled UTC.
      as_of: asOf ? (asOf.length === 16 ? asOf + ":00" : asOf) + "Z" : "",
    };
  }

  function iso(t) {
    return new Date(t * 1000).toISOString().replace(".000Z", "Z");
  }

  function text(tag, content) {
    var el = document.createElement(tag);
    el.textContent = content;
    return el;
  }

  function showGaps(data) {
    gapsBox.replaceChildren();
    if (!data.gaps.length) {
      var empty = text("div", "No gaps in this range (" + data.source_interval + " bars): every closed, expected bar is stored or confirmed empty.");
      empty.className = "empty";
      gapsBox.appendChild(empty);
      return;
    }
    var table = document.createElement("table");
    table.className = "grid";
    table.id = "gaps-table";
    var head = document.createElement("tr");
    ["Start (UTC)", "End (UTC, exclusive)", "Missing " + data.source_interval + " bars"].forEach(function (h) {
      head.appendChild(text("th", h));
    });
    table.appendChild(head);
    data.gaps.forEach(function (g) {
      var row = document.createElement("tr");
      row.appendChild(text("td", g.start));
      row.appendChild(text("td", g.end));
      var n = text("td", String(g.missing_bars));
      n.className = "num";
      row.appendChild(n);
      table.appendChild(row);
    });
    gapsBox.appendChild(table);
  }

  function describe(data) {
    var parts = [
      data.symbol + " " + data.interval + ": " + data.count + " bars",
      "adjust " + data.adjust,
      data.as_of ? "as of " + data.as_of : "as known now",
      "providers " + (data.providers.join(", ") || "none"),
      data.missing_bars + " missing",
      data.empty_count + " confirmed empty",
    ];
    if (data.marks_truncated) parts.push("marks cut to the first " + data.marks.length);
    return parts.join(" · ");
  }

  function draw(data) {
    bars = new Map(data.bars.map(function (b) { return [b.time, b]; }));
    candles.setData(data.bars.map(function (b) {
      return { time: b.time, open: b.open, high: b.high, low: b.low, close: b.close };
    }));
    // One point per time: a gap outranks an empty minute in the same bucket.
    marks = new Map();
    data.marks.forEach(function (m) {
      if (!marks.has(m.time) || m.kind === "gap") marks.set(m.time, m.kind);
    });
    var points = Array.from(marks.keys()).sort(function (a, b) { return a - b; });
    band.setData(points.map(function (t) {
      return { time: t, value: 1, color: marks.get(t) === "gap" ? GAP : EMPTY };
    }));
    chart.timeScale().fitContent();
    legend.textContent = describe(data);
    status.replaceChildren();
    if (!data.bars.length) {
      var empty = text("div", "No stored bars for " + data.symbol + " in this range" + (data.as_of ? " known at " + data.as_of : "") + ".");
      empty.className = "empty";
      status.appendChild(empty);
    }
    showGaps(data);
  }

  function fail(message) {
    legend.textContent = symbol;
    status.replaceChildren();
    var el = text("div", message);
    el.className = "flash flash-error";
    status.appendChild(el);
  }

  function load() {
    var c = controls();
    var query = new URLSearchParams({ symbol: symbol, interval: c.interval, adjust: c.adjust });
    if (c.as_of) query.set("as_of", c.as_of);
    var page = new URLSearchParams(query);
    if (c.as_of) page.set("as_of", c.as_of.replace(/:00Z$/, ""));
    history.replaceState(null, "", "/admin/symbol?" + page.toString());
    legend.textContent = "Loading " + symbol + "…";
    fetch("/admin/symbol/bars.json?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        var type = r.headers.get("content-type") || "";
        if (r.redirected || !(type.startsWith("application/json") || type.startsWith("application/problem+json"))) {
          throw new Error("the session ended: reload the page to log in again");
        }
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.detail || "HTTP " + r.status);
          return body;
        });
      })
      .then(draw)
      .catch(function (err) { fail(err.message); });
  }

  chart.subscribeCrosshairMove(function (param) {
    if (!param || param.time === undefined) return;
    var b = bars.get(param.time);
    var kind = marks.get(param.time);
    var parts = [iso(param.time)];
    if (b) {
      parts.push("O " + b.open + " H " + b.high + " L " + b.low + " C " + b.close + " V " + b.volume);
      parts.push("provider " + b.provider + " (" + b.status + ", learned " + b.as_of + ")");
    }
    if (kind === "gap") parts.push("missing (gap)");
    if (kind === "empty") parts.push("confirmed empty (no trades)");
    legend.textContent = parts.join(" · ");
  });

  ["chart-interval", "chart-as-of"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", load);
  });
  form.querySelectorAll("input[name=adjust]").forEach(function (el) {
    el.addEventListener("change", load);
  });
  load();
})();
