// The reconciliation page (/reconciliation): gross versus net per night (ECharts) and
// the statement link following the member chosen (the CSV is served as a download).
import { echarts } from "./charts.js";

function drawNights() {
  const element = document.querySelector("[data-chart=nights]");
  const data = document.getElementById("rec-series");
  if (!element || !data) return;
  const series = JSON.parse(data.textContent);
  const chart = echarts.init(element, null, { renderer: "canvas" });
  const yuan = (fen) => fen / 100;
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 64, right: 12, top: 36, bottom: 28 },
    xAxis: { type: "category", data: series.days.map((day) => day.slice(5)) },
    yAxis: { type: "value", name: "元" },
    series: [
      { name: element.dataset.gross, type: "bar", data: series.gross.map(yuan) },
      { name: element.dataset.net, type: "bar", data: series.net.map(yuan) },
    ],
  });
  new ResizeObserver(() => chart.resize()).observe(element);
}

function wireStatement() {
  const form = document.querySelector("form[data-statement]");
  if (!form) return;
  const select = form.querySelector("select[name=member]");
  const link = form.querySelector("[data-statement-link]");
  const update = () => {
    link.href = `/v1/reconciliations/${form.dataset.day}/statements/${select.value}.csv`;
  };
  select.addEventListener("change", update);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    update();
    link.click();
  });
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  drawNights();
  wireStatement();
});
