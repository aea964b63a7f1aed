"""The words and colours synthetic chart tasks are made of (data, no logic).

Short category labels are at most 9 characters, long ones at least 16, so whether unrotated tick
labels crowd depends on the bank and the count (`levers.label_crowding`). Ordered banks (months,
years, quarters) are drawn as consecutive runs. Dark colours have a contrast of at least 6.5:1
on white, pale ones at most 1.8:1, far on either side of the 4.5:1 a 10 pt label needs.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CategoryBank:
    axis: str  # the x-axis label
    noun: str  # what one category is, for titles ("region")
    short: tuple[str, ...]
    long: tuple[str, ...] = ()
    ordered: bool = False


CATEGORY_BANKS = (
    CategoryBank("Region", "region",
                 ("North", "South", "East", "West", "Central", "Coastal", "Inland", "Metro",
                  "Rural", "Islands"),
                 ("Northern Territories", "Southern Coastline", "Eastern Highlands",
                  "Western Plains Area", "Central Valley Area", "Harbour District",
                  "Mountain Provinces", "Lakeside Communities", "Desert Frontier Zone",
                  "River Delta Region")),
    CategoryBank("Product", "product",
                 ("Laptops", "Phones", "Tablets", "Monitors", "Printers", "Cameras", "Speakers",
                  "Routers", "Watches", "Drones"),
                 ("Gaming Laptops Pro", "Wireless Earbuds Max", "Smart Home Speakers",
                  "Ultra Wide Monitors", "Portable Power Banks", "Mirrorless Cameras",
                  "Fitness Tracker Bands", "Mesh Wi-Fi Routers", "Noise Cancelling Headsets",
                  "Robot Vacuum Cleaners")),
    CategoryBank("Department", "department",
                 ("Sales", "Finance", "Legal", "Support", "Research", "Design", "Ops", "HR",
                  "IT", "Payroll"),
                 ("Customer Success Team", "Research and Development", "Human Resources Office",
                  "Facilities Management", "Quality Assurance Lab", "Procurement and Supply",
                  "Corporate Communications", "Information Security")),
    CategoryBank("City", "city",
                 ("Oslo", "Lima", "Cairo", "Dublin", "Quito", "Perth", "Seoul", "Austin",
                  "Porto", "Delhi", "Nairobi", "Zürich", "Kraków", "São Paulo"),
                 ("San Francisco Bay Area", "Rio de Janeiro Metro", "Greater Manchester Area",
                  "Buenos Aires Province", "Kuala Lumpur Centre", "Cape Town Waterfront",
                  "Frankfurt am Main West", "Greater Montréal Area")),
    CategoryBank("Month", "month",
                 ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec"), ordered=True),
    CategoryBank("Year", "year", tuple(str(y) for y in range(2010, 2025)), ordered=True),
    CategoryBank("Quarter", "quarter",
                 tuple(f"Q{q} {y}" for y in range(2019, 2025) for q in range(1, 5)), ordered=True),
)

# (y-axis label, the measure as titles name it)
MEASURES = (
    ("Revenue (k$)", "revenue"), ("Units sold", "units sold"), ("Visitors", "visitors"),
    ("Orders", "orders"), ("Profit (M€)", "profit"), ("Support tickets", "support tickets"),
    ("Downloads", "downloads"), ("Energy use (MWh)", "energy use"), ("Rainfall (mm)", "rainfall"),
    ("Average temperature (°C)", "average temperature"), ("Headcount", "headcount"),
    ("Complaints", "complaints"), ("Sign-ups", "sign-ups"), ("Deliveries", "deliveries"),
)

SERIES_NAMES = (
    ("2022", "2023", "2024"), ("Plan", "Actual", "Forecast"), ("Online", "In store", "Wholesale"),
    ("Team A", "Team B", "Team C"), ("Weekdays", "Weekends", "Holidays"),
    ("Basic tier", "Premium tier", "Enterprise tier"), ("Morning", "Afternoon", "Evening"),
    ("Domestic", "Export", "Re-export"), ("New customers", "Returning", "Lapsed"),
)

# (x-axis label, y-axis label) of scatter plots, and the names of their point groups.
SCATTER_AXES = (
    ("Price ($)", "Units sold"), ("Hours studied", "Test score"), ("Ad spend (k$)", "Revenue (k$)"),
    ("Temperature (°C)", "Ice cream sales"), ("Age (years)", "Income (k$)"),
    ("Distance (km)", "Delivery time (min)"), ("Team size", "Tickets closed"),
    ("Screen time (h)", "Sleep quality"), ("Rainfall (mm)", "Crop yield (t)"),
)
SCATTER_GROUPS = (
    ("Store A", "Store B", "Store C"), ("Class 1", "Class 2", "Class 3"), ("2023", "2024", "2025"),
    ("Control", "Treatment", "Placebo"), ("Urban", "Suburban", "Rural"),
    ("Model X", "Model Y", "Model Z"),
)

# (what the pie divides, its slices)
PIE_BANKS = (
    ("household budget", ("Rent", "Food", "Travel", "Savings", "Health", "Leisure", "Utilities")),
    ("energy mix", ("Solar", "Wind", "Hydro", "Coal", "Gas", "Nuclear")),
    ("browser share", ("Chrome", "Safari", "Edge", "Firefox", "Opera", "Other")),
    ("time spent", ("Work", "Sleep", "Commute", "Exercise", "Meals", "Reading")),
    ("survey answers", ("Agree", "Neutral", "Disagree", "Unsure")),
    ("fleet by fuel", ("Petrol", "Diesel", "Electric", "Hybrid", "Hydrogen")),
    ("traffic sources", ("Search", "Social", "Email", "Direct", "Referral", "Ads")),
)

DARK_COLORS = ("#1f3a93", "#8b0000", "#1b5e20", "#4a148c", "#263238", "#7b3f00", "#004d40",
               "#b71c1c", "#0d47a1", "#3e2723", "#880e4f", "#33691e", "#5d4037", "#283593")
PALE_COLORS = ("#f9e79f", "#aed6f1", "#f5b7b1", "#d5f5e3", "#fad7a0", "#d7bde2", "#fdebd0",
               "#a9dfbf", "#f9d5e5", "#cfd8dc", "#ffe082", "#b2ebf2")

# Title templates: short ones stay within 32 characters, long ones are 44-54 (a 20 pt title
# overflows the figure from about 40). {measure} and {noun} come from the task, {year} is drawn.
SHORT_TITLES = ("{Measure} by {noun}", "{Measure} by {noun}, {year}", "{Measure} per {noun}",
                "{year} {measure} by {noun}")
LONG_TITLES = ("{Measure} by {noun} over the reporting period of {year}",
               "Comparison of {measure} for each {noun} in the {year} report",
               "How {measure} changed by {noun} during fiscal year {year}",
               "{Measure} recorded for every {noun} in the {year} annual review")
SHORT_SCATTER_TITLES = ("{y} vs {x}", "{y} against {x}", "{y} and {x}, {year}")
LONG_SCATTER_TITLES = ("Relationship between {x} and {y} in the {year} survey",
                       "How {y} varies with {x} across all groups in {year}")
SHORT_PIE_TITLES = ("{Thing}, {year}", "Our {thing} in {year}", "{Thing} split, {year}",
                    "{year} {thing}")
LONG_PIE_TITLES = ("Breakdown of the {thing} in the {year} annual budget review",
                   "How the {thing} was divided over the whole of {year}")
